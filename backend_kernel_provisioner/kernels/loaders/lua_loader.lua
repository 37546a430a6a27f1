-- Loader of the Lua session kernel (protocol: backend_kernel_provisioner/kernels/session.py).
-- Globals persist between cells (locals of a chunk end with it: that is Lua). A cell that is an
-- expression shows its value, as in Lua's own REPL. Interrupt: the kernel creates the file
-- "interrupt" in the session folder; a count hook notices it and raises an error in the cell.
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

local INTERRUPT = setmetatable({}, { __tostring = function() return "interrupted" end })
local interrupted = false

local function watch()
  if interrupted then error(INTERRUPT) end
  local found = io.open(flag, "r")
  if found then
    found:close()
    os.remove(flag)
    interrupted = true
    error(INTERRUPT)
  end
end

local function run(id, code)
  os.remove(flag)
  interrupted = false
  local chunk, err = load("return " .. code, "=cell", "t", _ENV)
  if not chunk then chunk, err = load(code, "=cell", "t", _ENV) end
  if not chunk then
    return report({ id = id, status = "error", ename = "SyntaxError", evalue = err, exit_code = 1 })
  end
  debug.sethook(watch, "", 1000000)
  local results = table.pack(xpcall(chunk, function(e)
    if e == INTERRUPT then return e end
    return { message = tostring(e), traceback = debug.traceback(tostring(e), 2) }
  end))
  debug.sethook()
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

report({ status = "ready" })
for line in cells:lines() do
  local id, kind, path = line:match("^(%d+) (%a+) (.*)$")
  if id then
    local file = io.open(path, "r")
    local text = file and file:read("a") or ""
    if file then file:close() end
    if kind == "run" then
      run(tonumber(id), text)
    elseif kind == "complete" then
      complete(tonumber(id), text)
    end
  end
end
