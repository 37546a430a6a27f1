-- Rich output of the Lua session kernel: the global `display` of the cells (loaded by lua_loader.lua).
-- Each call writes one {"display": ...} line on the status channel (protocol:
-- backend_kernel_provisioner/kernels/interpreter.py) after flushing stdout and stderr, then waits for the
-- kernel's line on the FIFO display-ack, so the display sits between what the cell printed before and after.
--
--   display(value)                 the value as text (tostring)
--   display.html(s)  display.markdown(s)  display.latex(s)  display.svg(s)  display.text(s)
--   display.json(tableOrJsonText)
--   display.png(bytesOrPath)  display.jpeg(bytesOrPath)   (bytes: the file's content, as io.read gives it)
--   display.mime({["text/html"] = ..., ["text/plain"] = ...})
-- Each takes an optional last argument `metadata` (a table, e.g. {width = 200} for an image).
return function(report, encode, folder)
  local serial = 0

  local function publish(data, files, metadata)
    report({ display = { data = data, files = files or {}, metadata = metadata or {} } })
    local ack = io.open(folder .. "/display-ack", "r")  -- the kernel holds it open: this open does not wait
    if ack then
      ack:read("l")
      ack:close()
    end
  end

  local function text(value, name)
    if type(value) ~= "string" then error("display." .. name .. "() takes a string", 3) end
    return value
  end

  local SIGNATURES = { png = "\137PNG", jpeg = "\255\216\255" }

  -- An image is its bytes (staged in the session folder for the kernel) or the path of its file.
  local function image_file(value, name)
    if type(value) ~= "string" then error("display." .. name .. "() takes the image's bytes or its path", 3) end
    if value:sub(1, #SIGNATURES[name]) == SIGNATURES[name] then
      serial = serial + 1
      local path = string.format("%s/display-%d.%s", folder, serial, name)
      local file = assert(io.open(path, "wb"))
      file:write(value)
      file:close()
      return path
    end
    local file = io.open(value, "rb")
    if not file then error("display." .. name .. "(): no such file: " .. value, 3) end
    file:close()
    return value
  end

  local display = {}
  local TEXT_TYPES = { html = "text/html", markdown = "text/markdown", latex = "text/latex", svg = "image/svg+xml",
                       text = "text/plain", javascript = "application/javascript" }
  for name, mime in pairs(TEXT_TYPES) do
    display[name] = function(value, metadata) publish({ [mime] = text(value, name) }, nil, metadata) end
  end
  for name, mime in pairs({ png = "image/png", jpeg = "image/jpeg" }) do
    display[name] = function(value, metadata) publish({}, { [mime] = image_file(value, name) }, metadata) end
  end
  function display.json(value, metadata)
    publish({ ["application/json"] = type(value) == "table" and encode(value) or tostring(value) }, nil, metadata)
  end
  function display.mime(bundle, metadata)
    if type(bundle) ~= "table" then error("display.mime() takes a table {[mime] = value}", 2) end
    publish(bundle, nil, metadata)
  end
  return setmetatable(display, {
    __call = function(_, value, metadata) publish({ ["text/plain"] = tostring(value) }, nil, metadata) end,
  })
end
