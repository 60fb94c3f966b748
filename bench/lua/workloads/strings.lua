-- String building and concatenation: .., string.format, table.concat, gsub, rep, sub.
local scale = tonumber(arg and arg[1]) or 1
local rounds = math.floor(30 * scale)
local total = 0
for r = 1, rounds do
  local s = ""
  for i = 1, 300 do s = s .. i .. "," end
  local parts = {}
  for i = 1, 2000 do parts[i] = ("%d:%s:%5.2f"):format(i, ("k" .. (i % 37)):rep(i % 5 + 1), i / 7) end
  local joined = table.concat(parts, ";")
  local up = joined:gsub("k(%d+)", function(d) return "K" .. d end)
  local pieces = 0
  for w in up:gmatch("[^;]+") do pieces = pieces + #w:sub(2, -2) end
  local buf = {}
  for i = 1, 500 do buf[#buf + 1] = tostring(i * r) .. string.char(65 + i % 26) end
  total = total + #s + #joined + #up + pieces + #table.concat(buf)
end
print("strings", rounds, total)
