-- Strings: short (interned) and long, building, concatenation, patterns, formatting.
local parts = {}
for i = 1, 2000 do parts[#parts + 1] = string.format("%04d:%s", i, string.rep("x", i % 17)) end
local s = table.concat(parts, ",")
print("concat length", #s)
print("prefix", s:sub(1, 40))

local acc = ""
for i = 1, 500 do acc = acc .. tostring(i) end
print("loop concat", #acc, acc:sub(-20))

local long = string.rep("abc", 100000)
print("long", #long, long:sub(299990, 300000))
local replaced, n = long:gsub("b", "BB")
print("gsub", #replaced, n)

local words = {}
for w in ("the quick brown fox jumps over the lazy dog"):gmatch("%a+") do words[#words + 1] = w:upper() end
print("gmatch", table.concat(words, " "))
print("find", ("hello world"):find("o w"), ("hello"):byte(1, -1))
print("format", string.format("%5.2f|%-5s|%x|%q", 3.14159, "ab", 255, "a\nb"))
print("reverse", ("stressed"):reverse(), ("%d items"):format(42))

local same = 0
for i = 1, 1000 do if ("k" .. i % 10) == ("k" .. (i + 10) % 10) then same = same + 1 end end
print("interned equal", same)
local packed = string.pack("i4 z d", 7, "packed", 2.5)
print("pack", #packed, string.unpack("i4 z d", packed))
