-- Closures and coroutines churn: generators, pipelines, callbacks with upvalues.
local scale = tonumber(arg and arg[1]) or 1
local rounds = math.floor(40 * scale)
local total = 0
for r = 1, rounds do
  for k = 1, 100 do
    local gen = coroutine.wrap(function()
      for i = 1, 20 do coroutine.yield(i * k) end
    end)
    for _ = 1, 20 do total = total + gen() end
  end
  local fs = {}
  for i = 1, 3000 do
    local a, b = i, r
    fs[i] = function(x) return x + a * b end
  end
  for i = 1, #fs do total = total + fs[i](1) % 7 end
  local function map(t, f) local o = {} for i = 1, #t do o[i] = f(t[i]) end return o end
  local sq = map(fs, function(f) return function(x) return f(x) * 2 end end)
  total = total + #sq
  local cos = {}
  for i = 1, 300 do
    cos[i] = coroutine.create(function(a) local b = coroutine.yield(a + 1) return a + b end)
    coroutine.resume(cos[i], i)
  end
  for i = 1, 300 do local _, v = coroutine.resume(cos[i], r) total = total + v end
end
print("closures_coroutines", rounds, total)
