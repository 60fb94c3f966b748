-- What fills a Lua state: build a few kinds of objects and ask the heap.
local hakmem = require "hakmem"

local words = {}
for i = 1, 5000 do words[i] = ("word%d"):format(i) end
local counters = {}
for i = 1, 1000 do local n = i counters[i] = function() n = n + 1 return n end end
local threads = {}
for i = 1, 100 do threads[i] = coroutine.create(function() coroutine.yield(i) end) end

local s = hakmem.stats()
print(("heap: %d live bytes, %d held"):format(s.live_bytes, s.held_bytes))
local names = {}
for name in pairs(s.types) do names[#names + 1] = name end
table.sort(names, function(a, b) return s.types[a].bytes > s.types[b].bytes end)
for _, name in ipairs(names) do
  local u = s.types[name]
  if u.count > 0 then print(("  %-9s %9d bytes in %6d blocks"):format(name, u.bytes, u.count)) end
end
