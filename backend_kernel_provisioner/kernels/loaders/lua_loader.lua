-- Loader of the Lua session kernel (protocol: backend_kernel_provisioner/kernels/session.py).
-- Globals persist between cells (locals of a chunk end with it: that is Lua). A cell that is an
-- expression shows its value, as in Lua's own REPL. Interrupt: the kernel writes the cell's request
-- id to the file "interrupt" in the session folder; a count hook, and every blocking call on its
-- return, notice it and raise an error in the cell.
local cells = assert(io.open(os.getenv("BACKEND_SESSION_CELLS"), "r"))
local status = assert(io.open(os.getenv("BACKEND_SESSION_STATUS"), "w"))
local flag = os.getenv("BACKEND_SESSION_DIR") .. "/interrupt"
io.stdout:setvbuf("no")

local function quote(s)
  s = tostring(s):gsub('[%c"\\]', function(c)
    local named = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
    return named[c] or string.format("\\u%04x", c:byte())
  end)
  return '"' .. s .. '"'
end

local function encode(value)
  if type(value) == "table" then
    local parts = {}
    if #value > 0 or next(value) == nil then
      for _, item in ipairs(value) do parts[#parts + 1] = encode(item) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for key, item in pairs(value) do parts[#parts + 1] = quote(key) .. ":" .. encode(item) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif type(value) == "number" or type(value) == "boolean" then
    return tostring(value)
  end
  return quote(value)
end

local function report(answer)
  io.stdout:flush()
  io.stderr:flush()
  status:write(encode(answer), "\n")
  status:flush()
end

-- display(), display.html(), display.png(), ...: rich output on the status channel (lua_display.lua).
display = dofile(arg[0]:match("^(.*)/") .. "/lua_display.lua")(report, encode, os.getenv("BACKEND_SESSION_DIR"))

local INTERRUPT = setmetatable({}, { __tostring = function() return "interrupted" end })
local interrupted = false
local current = nil  -- id of the running cell; nil outside cells (the loader's own reads)
local methods = getmetatable(io.stdin).__index
local raw = { read = methods.read, lines = methods.lines, close = methods.close }

-- The flag names the request it interrupts; one naming another request is stale.
local function watch()
  if current == nil then return end
  if interrupted then error(INTERRUPT, 0) end
  local found = io.open(flag, "r")
  if found then
    local named = raw.read(found, "a")
    raw.close(found)
    if named == tostring(current) then
      os.remove(flag)
      interrupted = true
      error(INTERRUPT, 0)
    end
  end
end

-- The count hook never runs while a C function blocks: os.execute (libc's system() ignores SIGINT,
-- so the killed command just returns), a read woken by the kernel's newline, pclose. Each of them
-- checks the flag when it returns, so nothing after it runs. Their own errors keep the wording
-- and the position (the cell's line) of an unwrapped call.
local function rethrow(e, name, method, level)
  if type(e) ~= "string" then error(e, 0) end
  e = e:gsub("^[^\n]-lua_loader%.lua:%d+: ", "")
  e = e:gsub("^bad argument #(%d+) to '%?'", function(n)
    return string.format("bad argument #%d to '%s'", method and n - 1 or n, name)
  end)
  error(e, level)
end

-- level: where the cell's call is, seen from rethrow (3 when the wrapper tail-calls call_checked).
local function call_checked(name, method, level, original, ...)
  local results = table.pack(pcall(original, ...))
  watch()
  if not results[1] then rethrow(results[2], name, method, level) end
  return table.unpack(results, 2, results.n)
end

local function checked(name, original, method)
  return function(...) return call_checked(name, method, 3, original, ...) end
end

local function checked_lines(name, original, method)
  return function(...)
    local iterator = call_checked(name, method, 4, original, ...)
    return function(...) return call_checked(name, false, 3, iterator, ...) end
  end
end

os.execute = checked("execute", os.execute)
io.read = checked("read", io.read)
io.lines = checked_lines("lines", io.lines)
methods.read = checked("read", methods.read, true)
methods.close = checked("close", methods.close, true)
methods.lines = checked_lines("lines", methods.lines, true)

local function run(id, code)
  interrupted = false
  local chunk, err = load("return " .. code, "=cell", "t", _ENV)
  if not chunk then chunk, err = load(code, "=cell", "t", _ENV) end
  if not chunk then
    return report({ id = id, status = "error", ename = "SyntaxError", evalue = err, exit_code = 1 })
  end
  current = id
  debug.sethook(watch, "", 1000000)
  local results = table.pack(xpcall(chunk, function(e)
    if e == INTERRUPT then return e end
    return { message = tostring(e), traceback = debug.traceback(tostring(e), 2) }
  end))
  debug.sethook()
  if results[1] then  -- an interrupt the cell outran still ends it as interrupted
    local checked_ok, e = pcall(watch)
    if not checked_ok then results = table.pack(false, e) end
  end
  current = nil
  interrupted = false
  if not results[1] then
    local e = results[2]
    if e == INTERRUPT then
      return report({ id = id, status = "error", ename = "KeyboardInterrupt", evalue = "interrupted", exit_code = 130 })
    end
    local lines = {}
    for line in (e.traceback .. "\n"):gmatch("(.-)\n") do
      if not (line:find("[C]: in function 'xpcall'", 1, true) or line:find("[C]: in ?", 1, true)
              or line:find("lua_loader.lua", 1, true)) then
        lines[#lines + 1] = line
      end
    end
    return report({ id = id, status = "error", ename = "Error", evalue = e.message, exit_code = 1, traceback = lines })
  end
  local answer = { id = id, status = "ok" }
  if results.n > 1 then
    local shown = {}
    for i = 2, results.n do shown[#shown + 1] = tostring(results[i]) end
    answer.result = table.concat(shown, "\t")
  end
  report(answer)
end

local function complete(id, text)
  local token = text:match("[%w_%.:]*$") or ""
  local path, partial = token:match("^(.*)[%.:]([%w_]*)$")
  local scope = _ENV
  if path then
    for part in path:gmatch("[^%.:]+") do
      scope = type(scope) == "table" and scope[part] or nil
    end
  else
    partial = token
  end
  local matches = {}
  local seen = {}
  local function add(source)
    if type(source) ~= "table" then return end
    for key in pairs(source) do
      if type(key) == "string" and key:sub(1, #partial) == partial and not seen[key] then
        seen[key] = true
        matches[#matches + 1] = (path and token:sub(1, #token - #partial) or "") .. key
      end
    end
  end
  add(scope)
  local meta = getmetatable(scope)
  if type(meta) == "table" then add(meta.__index) end
  table.sort(matches)
  report({ id = id, status = "ok", matches = matches, token = token })
end

-- Inspect: the file holds the name and the detail level, one a line (lua_inspect.lua answers).
local inspect_name = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lua_inspect.lua")

local function inspect(id, text)
  local name, detail = text:match("^([^\n]*)\n?(%d*)")
  local found, shown = inspect_name(name or "", tonumber(detail) or 0, _ENV)
  report({ id = id, status = "ok", found = found and true or false, text = shown })
end

local is_complete = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lua_is_complete.lua")

report({ status = "ready" })
for line in cells:lines() do
  local id, kind, path = line:match("^(%d+) ([%a_]+) (.*)$")
  if id then
    local file = io.open(path, "r")
    local text = file and file:read("a") or ""
    if file then file:close() end
    if kind == "run" then
      run(tonumber(id), text)
    elseif kind == "complete" then
      complete(tonumber(id), text)
    elseif kind == "inspect" then
      inspect(tonumber(id), text)
    elseif kind == "is_complete" then  -- does the text end early? (lua_is_complete.lua)
      report({ id = tonumber(id), status = "ok", complete = is_complete(text) })
    end
  end
end
