-- Helpers the scripts start with. Commands go out a thousand items at a time rather than one
-- per pair: a page of 8,000 then costs Redis a few dozen commands, not 40,000 (Lua's `unpack`
-- also has a limit of some 8,000 values).
local function batched(command, key, items)
  for i = 1, #items, 1000 do
    redis.call(command, key, unpack(items, i, math.min(i + 999, #items)))
  end
end
local function fetched(command, key, fields)
  local values = {}
  for i = 1, #fields, 1000 do
    local got = redis.call(command, key, unpack(fields, i, math.min(i + 999, #fields)))
    for j = 1, #got do
      values[#values + 1] = got[j]
    end
  end
  return values
end
local function push(list, a, b)
  list[#list + 1] = a
  list[#list + 1] = b
end
local function lines(text)
  local found = {}
  for line in string.gmatch(text, '[^\n]+') do
    found[#found + 1] = line
  end
  return found
end
