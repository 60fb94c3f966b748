-- Binary trees (after the benchmarks game): many small tables, allocated and dropped in bulk.
local scale = tonumber(arg and arg[1]) or 1
local maxdepth = math.max(6, math.floor(12 + math.log(scale, 2) + 0.5))

local function bottom_up(depth)
  if depth == 0 then return {} end
  depth = depth - 1
  return {bottom_up(depth), bottom_up(depth)}
end

local function check(tree)
  if tree[1] then return 1 + check(tree[1]) + check(tree[2]) end
  return 1
end

local total = check(bottom_up(maxdepth + 1))
local long_lived = bottom_up(maxdepth)
for depth = 4, maxdepth, 2 do
  local iters = 1 << (maxdepth - depth + 4)
  local c = 0
  for _ = 1, iters do c = c + check(bottom_up(depth)) end
  total = total + c
end
total = total + check(long_lived)
print("binary_trees", maxdepth, total)
