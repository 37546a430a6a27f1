-- is_complete for the Lua session kernel (loaded by lua_loader.lua, which answers an `is_complete`
-- request with the verdict): Lua's own compiler says whether the text ends early. load() compiles
-- without running; an error "near <eof>" means a block, a call or a long string is still open (as
-- Lua's own REPL decides when it shows its ">>" prompt).
return function(text)
  if load("return " .. text, "=cell", "t") or load(text, "=cell", "t") then
    return "complete"
  end
  local _, err = load(text, "=cell", "t")
  if tostring(err):find("<eof>'?$") then
    return "incomplete"
  end
  return "invalid"
end
