-- Coroutines: generators, wrap, status, yields across pcall, errors, close.
local function gen(n)
  return coroutine.wrap(function()
    for i = 1, n do coroutine.yield(i) end
  end)
end
local s = 0
for v in gen(1000) do s = s + v end
print("generator", s)

local co = coroutine.create(function(a, b)
  local c = coroutine.yield(a + b)
  local d, e = coroutine.yield(c * 2)
  return d + e
end)
print("resume", coroutine.resume(co, 1, 2))
print("resume", coroutine.resume(co, 10))
print("resume", coroutine.resume(co, 3, 4))
print("status", coroutine.status(co), coroutine.resume(co))

local bad = coroutine.create(function() error("boom", 0) end)
print("error", coroutine.resume(bad))

local pc = coroutine.wrap(function()
  local ok, v = pcall(function() return coroutine.yield("inside pcall") end)
  return ok, v
end)
print("yield across pcall", pc())
print("yield across pcall", pc("back"))

local done = 0
for i = 1, 5000 do
  local c = coroutine.create(function(x) coroutine.yield(x) return x + 1 end)
  coroutine.resume(c, i)
  if i % 2 == 0 then coroutine.resume(c) end
  if coroutine.status(c) == "suspended" then coroutine.close(c) end
  done = done + 1
end
collectgarbage()
print("many coroutines", done)
print("running", coroutine.isyieldable(), select(2, coroutine.running()))
