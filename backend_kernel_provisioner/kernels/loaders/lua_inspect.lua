-- Inspect (Shift-Tab) for the Lua session kernel (loaded by lua_loader.lua): what a name of the
-- session is. A Lua function shows its signature (parameter names from debug.getlocal, without
-- calling it) and where it was defined; a table its size and keys; other values their type and
-- value. Lua's C functions carry no names of parameters: a short table of the standard library's
-- signatures stands in for their documentation.
local LIBRARY = {
  ["print"] = "print(...)  -- writes its arguments to stdout, separated by tabs, with tostring",
  ["type"] = "type(v)  -- the type of v as a string: \"nil\", \"number\", \"string\", \"table\", ...",
  ["tostring"] = "tostring(v)  -- v as a string (the __tostring metamethod when there is one)",
  ["tonumber"] = "tonumber(e [, base])  -- e converted to a number, or fail",
  ["pairs"] = "pairs(t)  -- iterator over all key-value pairs of table t",
  ["ipairs"] = "ipairs(t)  -- iterator over t[1], t[2], ... up to the first nil",
  ["select"] = "select(index, ...)  -- the arguments after index, or their count with \"#\"",
  ["pcall"] = "pcall(f [, arg1, ...])  -- calls f in protected mode: true and its results, or false and the error",
  ["error"] = "error(message [, level])  -- raises an error with message",
  ["assert"] = "assert(v [, message])  -- raises an error when v is false or nil, else returns its arguments",
  ["setmetatable"] = "setmetatable(table, metatable)  -- sets the metatable of table, returns table",
  ["getmetatable"] = "getmetatable(object)  -- the metatable of object, or nil",
  ["require"] = "require(modname)  -- loads the given module once and returns its value",
  ["load"] = "load(chunk [, chunkname [, mode [, env]]])  -- compiles a chunk into a function",
  ["string.format"] = "string.format(formatstring, ...)  -- a formatted string, as C's sprintf",
  ["string.rep"] = "string.rep(s, n [, sep])  -- n copies of s separated by sep",
  ["string.sub"] = "string.sub(s, i [, j])  -- the substring of s from i to j",
  ["string.find"] = "string.find(s, pattern [, init [, plain]])  -- start and end of the first match, and captures",
  ["string.match"] = "string.match(s, pattern [, init])  -- the captures of the first match of pattern",
  ["string.gmatch"] = "string.gmatch(s, pattern [, init])  -- iterator over the matches of pattern",
  ["string.gsub"] = "string.gsub(s, pattern, repl [, n])  -- copy of s with matches replaced, and their count",
  ["string.len"] = "string.len(s)  -- the length of s in bytes",
  ["string.upper"] = "string.upper(s)  -- s in upper case",
  ["string.lower"] = "string.lower(s)  -- s in lower case",
  ["table.insert"] = "table.insert(list, [pos,] value)  -- inserts value at pos (default: at the end)",
  ["table.remove"] = "table.remove(list [, pos])  -- removes and returns the element at pos (default: the last)",
  ["table.concat"] = "table.concat(list [, sep [, i [, j]]])  -- the string list[i]..sep..list[i+1]...list[j]",
  ["table.sort"] = "table.sort(list [, comp])  -- sorts list in place, with comp(a, b) as less-than",
  ["table.unpack"] = "table.unpack(list [, i [, j]])  -- the elements list[i], ..., list[j]",
  ["math.floor"] = "math.floor(x)  -- the largest integer not above x",
  ["math.max"] = "math.max(x, ...)  -- the largest of its arguments",
  ["math.min"] = "math.min(x, ...)  -- the smallest of its arguments",
  ["math.random"] = "math.random([m [, n]])  -- a pseudo-random number (float, or integer in [m, n])",
  ["io.read"] = "io.read(...)  -- reads stdin by the given formats (\"l\" a line, \"n\" a number, \"a\" all)",
  ["io.write"] = "io.write(...)  -- writes its arguments (strings or numbers) to stdout",
  ["io.open"] = "io.open(filename [, mode])  -- opens a file, returns a file handle or nil and an error",
  ["os.time"] = "os.time([table])  -- the current time, or the time the table describes",
  ["os.execute"] = "os.execute([command])  -- runs command in a shell; true or fail, \"exit\" and its status",
  ["os.getenv"] = "os.getenv(varname)  -- the value of an environment variable, or nil",
}

local function signature(name, fn)
  local info = debug.getinfo(fn, "Su")
  if info.what == "C" then return nil, info end
  local params = {}
  for i = 1, info.nparams do params[#params + 1] = debug.getlocal(fn, i) end
  if info.isvararg then params[#params + 1] = "..." end
  return name .. "(" .. table.concat(params, ", ") .. ")", info
end

local function keys_of(t, limit)
  local names, count = {}, 0
  for key in pairs(t) do
    count = count + 1
    if #names < limit then names[#names + 1] = tostring(key) end
  end
  table.sort(names)
  return names, count
end

-- found, text for name (a dotted path, `t:method` taken as t.method) in env.
return function(name, detail, env)
  local value = env
  for part in name:gmatch("[^%.:]+") do
    local ok, next_value = pcall(function() return value[part] end)
    if not ok or next_value == nil then return false end
    value = next_value
  end
  if value == env then return false end
  local dotted = name:gsub(":", ".")
  local kind = type(value)
  if kind == "function" then
    local shown, info = signature(dotted, value)
    if shown == nil then
      local doc = LIBRARY[dotted] or LIBRARY[dotted:match("[^%.]+$")]
      return true, (doc and ("Signature: " .. doc .. "\n") or "") .. "Type:      function (built in, C)"
    end
    local where = info.short_src == "cell" and "a cell" or info.short_src
    return true, string.format("Signature: %s\nType:      function\nDefined:   %s, lines %d-%d", shown, where,
                               info.linedefined, info.lastlinedefined)
  elseif kind == "table" then
    local names, count = keys_of(value, detail > 0 and 200 or 30)
    local text = string.format("Type:      table\nLength:    %d\nKeys:      %d", #value, count)
    if #names > 0 then
      text = text .. "\nNames:     " .. table.concat(names, ", ") .. (count > #names and ", ..." or "")
    end
    return true, text
  end
  local shown = kind == "string" and string.format("%q", value) or tostring(value)
  if #shown > 2000 and detail == 0 then shown = shown:sub(1, 2000) .. "..." end
  return true, "Type:      " .. kind .. "\nValue:     " .. shown
end
