-- Tables growing and shrinking: array part, hash part, removal, rehash.
local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = tostring(k) end
  table.sort(ks)
  return table.concat(ks, " ")
end

local a = {}
for i = 1, 100000 do a[i] = i * 2 end
print("grown", #a, a[1], a[100000])
for i = 100000, 10001, -1 do a[i] = nil end
print("shrunk", #a)
for i = 10000, 1, -1 do if i % 3 ~= 0 then table.remove(a, i) end end
print("after remove", #a, a[1], a[#a])
for i = #a, 1, -1 do a[i] = nil end
collectgarbage()
print("emptied", #a, next(a))

local h = {}
for i = 1, 50000 do h["key" .. i] = i end
local sum = 0
for _, v in pairs(h) do sum = sum + v end
print("hash sum", sum)
for i = 1, 50000, 2 do h["key" .. i] = nil end
local left = 0
for _ in pairs(h) do left = left + 1 end
print("hash left", left)

local q = {}
for round = 1, 20 do
  for i = 1, 1000 do table.insert(q, 1 + (i * 7) % (#q + 1), i + round) end
  for _ = 1, 900 do table.remove(q, 1 + (#q // 2)) end
end
print("churn", #q, q[1], q[#q])

local m = {10, 20, 30, x = 1, y = 2, [true] = "t", [2.5] = "f"}
print("mixed", sorted_keys(m))
table.sort(a)
local t2 = table.move({1, 2, 3, 4, 5}, 2, 4, 1, {})
print("move", table.concat(t2, ","), select("#", table.unpack(t2)))
local nested = {}
for i = 1, 200 do nested[i] = {i, {i, {i}}} end
print("nested", nested[200][2][2][1])
