-- Userdata with __gc (newuserdata is the harness's lua_newuserdatauv), finalizer order,
-- resurrection, tables with __gc, user values.
local log = {}
local mt = {__gc = function(u) log[#log + 1] = "ud" .. getuservalue(u) end}
for i = 1, 5 do
  local u = newuserdata(64 * i, 1)
  setuservalue(u, i)
  debug.setmetatable(u, mt)
end
collectgarbage()
collectgarbage()
table.sort(log)
print("finalized", #log, table.concat(log, " "))

local order = {}
do
  local a = setmetatable({}, {__gc = function() order[#order + 1] = "a" end})
  local b = setmetatable({}, {__gc = function() order[#order + 1] = "b" end})
  local c = setmetatable({}, {__gc = function() order[#order + 1] = "c" end})
end
collectgarbage()
print("reverse creation order", table.concat(order, ""))

local saved
do
  setmetatable({name = "phoenix"}, {__gc = function(o) saved = o end})
end
collectgarbage()
print("resurrected", saved and saved.name)
saved = nil
collectgarbage()

local big = 0
for i = 1, 2000 do
  local u = newuserdata(1000 + i, 0)
  debug.setmetatable(u, {__gc = function() big = big + 1 end})
end
collectgarbage()
collectgarbage()
print("big userdata finalized", big)
