-- A producer/consumer pipeline of coroutines; many short-lived threads and closures.
local function producer(n)
  return coroutine.wrap(function()
    for i = 1, n do coroutine.yield({id = i, name = "item" .. i}) end
  end)
end

local function filter(src, pred)
  return coroutine.wrap(function()
    for item in src do if pred(item) then coroutine.yield(item) end end
  end)
end

local total, count = 0, 0
for round = 1, 20 do
  for item in filter(producer(5000), function(x) return x.id % 3 == 0 end) do
    total = total + item.id
    count = count + 1
  end
end
print("items", count, "sum", total)
local s = require("hakmem").stats()
print("threads live", s.types.thread.count, "functions live", s.types["function"].count)
