"""Lua 5.4: one persistent interpreter; globals last between cells (locals end with their chunk)."""

from __future__ import annotations

from backend_kernel_provisioner.common.languages import LANGUAGES
from backend_kernel_provisioner.kernels.process import ChildProcess
from backend_kernel_provisioner.kernels.session import SessionKernel

LUA_KEYWORDS = (
    "and break do else elseif end false for function goto if in local nil not or repeat return then "
    "true until while print pairs ipairs tostring tonumber type require string table math io os "
    "coroutine utf8 debug select setmetatable getmetatable pcall error assert"
).split()


class LuaKernel(SessionKernel):
    """The Lua recipe. The standalone interpreter resets SIGINT to its default action after the
    first one, so cells are interrupted by a flag file the loader's hook watches (and every blocking
    call it wraps, when it returns), and only the programs the cell started get SIGINT."""

    spec = LANGUAGES["lua"]

    mimetype = "text/x-lua"
    file_extension = ".lua"
    pygments_lexer = "lua"
    codemirror_mode = "lua"
    keywords = tuple(LUA_KEYWORDS)
    line_comment = "--"
    block_comment = None
    loader = "lua_loader.lua"

    def interrupt_session(self, child: ChildProcess) -> None:
        self.raise_interrupt_flag()
        self.signal_user_processes(child)


kernel_class = LuaKernel
