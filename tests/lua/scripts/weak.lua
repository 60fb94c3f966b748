-- Weak tables: weak values, weak keys, ephemerons, strings are never collected from weak tables.
local function count(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end

local wv = setmetatable({}, {__mode = "v"})
local keep = {}
for i = 1, 100 do
  local o = {i}
  wv[i] = o
  if i % 10 == 0 then keep[#keep + 1] = o end
end
collectgarbage()
print("weak values left", count(wv))

local wk = setmetatable({}, {__mode = "k"})
local keys = {}
for i = 1, 100 do
  local k = {}
  wk[k] = i
  if i <= 25 then keys[i] = k end
end
collectgarbage()
print("weak keys left", count(wk))

local eph = setmetatable({}, {__mode = "k"})
for i = 1, 50 do local k = {} eph[k] = {ref = k} end
collectgarbage()
print("ephemerons left", count(eph))

local ws = setmetatable({}, {__mode = "kv"})
ws.a = "string value"
ws[1] = 42
ws.f = print
collectgarbage()
print("non-collectable kept", count(ws), ws.a, ws[1])

local cache = setmetatable({}, {__mode = "v"})
local function memo(n) local v = cache[n] if not v then v = {n * n} cache[n] = v end return v end
local s = 0
for round = 1, 20 do
  for i = 1, 500 do s = s + memo(i)[1] end
  if round % 5 == 0 then collectgarbage() end
end
print("memo sum", s)
