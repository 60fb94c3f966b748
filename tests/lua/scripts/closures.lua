-- Closures: upvalues shared and private, counters, recursion, varargs, many short-lived closures.
local function counter()
  local n = 0
  return function() n = n + 1; return n end, function() return n end
end
local inc, get = counter()
for _ = 1, 10 do inc() end
print("counter", get())

local fs = {}
for i = 1, 10 do fs[i] = function() return i * i end end
local s = 0
for _, f in ipairs(fs) do s = s + f() end
print("loop closures", s)

local function compose(...)
  local fns = {...}
  return function(x)
    for i = #fns, 1, -1 do x = fns[i](x) end
    return x
  end
end
print("compose", compose(function(x) return x + 1 end, function(x) return x * 2 end)(5))

local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
print("fib", fib(22))

local total = 0
for i = 1, 200000 do
  local f = function(a) return a + i end
  total = total + f(1)
end
print("short-lived", total)

local function varargs(...) return select("#", ...), ... end
print("varargs", varargs(1, nil, 3, nil))
local chunk = load("local a, b = ... return a * b")
print("load", chunk(6, 7))
local env = {x = 5}
print("env", load("return x * 2", "chunk", "t", env)())
