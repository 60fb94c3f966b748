-- Hit a limit, recover, and carry on. Run with --limit (the heap's held bytes, e.g. 16777216)
-- or --lua-limit (Lua's own bytes, e.g. 4194304), or a heap limit is set here.
local hakmem = require "hakmem"
if hakmem.limit() == 0 and hakmem.limit(nil, "lua") == 0 then
  hakmem.limit(hakmem.stats().held_bytes + 16 * 1024 * 1024)
end
print("limit", hakmem.limit(), "lua limit", hakmem.limit(nil, "lua"))

local hog = {}
local ok, err = pcall(function()
  for i = 1, math.huge do hog[i] = ("x"):rep(100) .. i end
end)
print("filling:", ok, err, #hog .. " strings made before the limit")
hog = nil -- at a limit even the stats table needs room: the collector finds it here
local s = hakmem.stats()
print("held", s.held_bytes, "<= limit", s.limit_bytes == 0 or s.held_bytes <= s.limit_bytes)
print("lua bytes", s.lua_bytes, "<= lua limit", s.lua_limit == 0 or s.lua_bytes <= s.lua_limit)

print("after collect, held", hakmem.collect())
local t = {}
for i = 1, 10000 do t[i] = tostring(i) end
print("still working:", #table.concat(t))
