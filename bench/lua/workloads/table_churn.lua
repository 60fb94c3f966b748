-- Table insert/remove churn: arrays and hashes grown, shrunk and dropped; queues; rehashes.
local scale = tonumber(arg and arg[1]) or 1
local rounds = math.floor(25 * scale)
local total = 0
for r = 1, rounds do
  local arr = {}
  for i = 1, 5000 do arr[#arr + 1] = {i, r} end
  for i = 1, 2500 do table.remove(arr) end
  for i = 1, 200 do table.insert(arr, 1 + (i * 31) % #arr, i) end
  local h = {}
  for i = 1, 4000 do h["k" .. i] = i end
  for i = 1, 4000, 2 do h["k" .. i] = nil end
  for i = 1, 2000 do h[i * 7] = i end
  local n = 0
  for _ in pairs(h) do n = n + 1 end
  local q, head = {}, 1
  for i = 1, 3000 do
    q[#q + 1] = {i}
    if i % 3 == 0 then q[head] = nil; head = head + 1 end
  end
  local small = {}
  for i = 1, 2000 do small[i] = {x = i, y = -i, [1] = i} end
  total = total + #arr + n + (#q - head) + #small
end
print("table_churn", rounds, total)
