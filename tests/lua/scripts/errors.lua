-- Errors that are not memory errors behave the same; the state is used after each of them.
local ok0, err0 = pcall(error, {code = 1})
print("pcall", ok0, type(err0), err0.code)
print("error msg", pcall(error, "plain", 0))
print("xpcall", xpcall(function() local x = nil; return x.y end, function(m) return "handled" end))
local ok, e = pcall(string.rep, "x", -1)
print("rep negative", ok, e == "")
local deep = 0
local function recurse() deep = deep + 1 return recurse() + 1 end
print("stack overflow caught", (pcall(recurse)), deep > 1000)
print("after", select("#", table.unpack({1, 2, 3})))
