-- Hit the heap's limit, recover, and carry on. Run with --limit (e.g. 16777216) or set one here.
local hakmem = require "hakmem"
if hakmem.limit() == 0 then hakmem.limit(hakmem.stats().held_bytes + 16 * 1024 * 1024) end
print("limit", hakmem.limit())

local hog = {}
local ok, err = pcall(function()
  for i = 1, math.huge do hog[i] = ("x"):rep(100) .. i end
end)
print("filling:", ok, err, #hog .. " strings made before the limit")
local s = hakmem.stats()
print("held", s.held_bytes, "<= limit", s.held_bytes <= s.limit_bytes)

hog = nil
print("after collect, held", hakmem.collect())
local t = {}
for i = 1, 10000 do t[i] = tostring(i) end
print("still working:", #table.concat(t))
