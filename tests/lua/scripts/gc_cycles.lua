-- Many full GC cycles, both GC modes, steps, stop/restart; Lua's own byte count is allocator
-- independent, so it is printed too.
local function churn(n)
  local t = {}
  for i = 1, n do t[i] = {i, tostring(i), function() return i end} end
  return #t
end
local before = collectgarbage("count")
for cycle = 1, 200 do
  churn(500)
  collectgarbage("collect")
end
print("full cycles done", collectgarbage("count") - before < 64)

collectgarbage("generational")
for _ = 1, 50 do churn(1000) collectgarbage("step", 0) end
print("generational", collectgarbage("isrunning"))
collectgarbage("incremental")
for _ = 1, 50 do churn(1000) collectgarbage("step", 10) end
collectgarbage("stop")
churn(2000)
print("stopped", collectgarbage("isrunning"))
collectgarbage("restart")
collectgarbage()
collectgarbage()
print("count KiB", collectgarbage("count"))
local t = {}
for i = 1, 20000 do t[i] = i end
print("count after table KiB", collectgarbage("count"))
