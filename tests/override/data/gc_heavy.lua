-- gc_heavy.lua: keeps Lua's collector busy (tables, strings, closures) with deterministic output.
local function tree(d)
  if d == 0 then return {} end
  return { tree(d - 1), tree(d - 1), tag = "n" .. d }
end
local function count(t)
  if t[1] == nil then return 1 end
  return 1 + count(t[1]) + count(t[2])
end
local total = 0
for i = 1, 40 do total = total + count(tree(14)) end
print("trees", total)
local long = {}
for i = 1, 200000 do long[i] = { i, tostring(i), string.rep("x", i % 64) } end
local s = 0
for i = 1, #long, 7 do s = s + #long[i][3] end
print("long-lived", #long, s)
long = nil
collectgarbage("collect")
local parts = {}
for i = 1, 100000 do parts[#parts + 1] = string.format("%d:%s", i, string.rep("ab", i % 10)) end
local joined = table.concat(parts, ",")
print("concat", #joined)
local closures = {}
for i = 1, 100000 do
  local v = i
  closures[i % 1000 + 1] = function() return v * 2 end
end
print("closure", closures[500]())
local weak = setmetatable({}, { __mode = "k" })
for i = 1, 50000 do weak[{}] = i end
collectgarbage("collect")
local n = 0
for _ in pairs(weak) do n = n + 1 end
print("weak after collect", n)
local words = {}
for w in string.gmatch(string.rep("the quick brown fox jumps over the lazy dog ", 20000), "%a+") do
  words[w] = (words[w] or 0) + 1
end
local keys = {}
for k in pairs(words) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do io.write(k, "=", words[k], " ") end
print()
