-- A small JSON-like encoder and decoder run over nested documents: many short strings,
-- small tables and table.concat buffers.
local scale = tonumber(arg and arg[1]) or 1
local rounds = math.floor(25 * scale)

local encode
local function encode_string(s) return '"' .. s:gsub('[%c"\\]', function(c) return ("\\u%04x"):format(c:byte()) end) .. '"' end
function encode(v, out)
  local t = type(v)
  if t == "table" then
    if #v > 0 or next(v) == nil then
      out[#out + 1] = "["
      for i = 1, #v do if i > 1 then out[#out + 1] = "," end encode(v[i], out) end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = encode_string(k)
        out[#out + 1] = ":"
        encode(v[k], out)
      end
      out[#out + 1] = "}"
    end
  elseif t == "string" then out[#out + 1] = encode_string(v)
  else out[#out + 1] = tostring(v) end
  return out
end

local decode_value
local function skip(s, i) return s:find("[^ \n\t]", i) or #s + 1 end
function decode_value(s, i)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local obj = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then return obj, i + 1 end
    while true do
      local k; k, i = decode_value(s, i)
      i = skip(s, i) + 1 -- ':'
      obj[k], i = decode_value(s, i)
      i = skip(s, i)
      local d = s:sub(i, i); i = i + 1
      if d == "}" then return obj, i end
    end
  elseif c == "[" then
    local arr = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then return arr, i + 1 end
    while true do
      arr[#arr + 1], i = decode_value(s, i)
      i = skip(s, i)
      local d = s:sub(i, i); i = i + 1
      if d == "]" then return arr, i end
    end
  elseif c == '"' then
    local j = s:find('"', i + 1, true)
    local str = s:sub(i + 1, j - 1):gsub("\\u(%x%x%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    return str, j + 1
  else
    local num = s:match("^-?[%d.e+-]+", i)
    if num then return tonumber(num), i + #num end
    if s:sub(i, i + 3) == "true" then return true, i + 4 end
    if s:sub(i, i + 4) == "false" then return false, i + 5 end
    return nil, i + 4
  end
end

local function document(n)
  local users = {}
  for i = 1, n do
    users[i] = {id = i, name = "user" .. i, email = ("u%d@example.org"):format(i), score = i * 1.5,
                active = i % 2 == 0, tags = {"t" .. i % 7, "g" .. i % 3, "x"}, addr = {city = "c" .. i % 50, zip = 10000 + i}}
  end
  return {version = 3, count = n, users = users}
end

local total = 0
for r = 1, rounds do
  local text = table.concat(encode(document(200 + r % 50), {}))
  local back = decode_value(text, 1)
  total = total + #text + back.count + #back.users[1].tags
end
print("json", rounds, total)
