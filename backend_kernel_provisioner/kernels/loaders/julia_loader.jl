# Loader of the Julia session kernel (protocol: backend_kernel_provisioner/kernels/session.py).
# Cells are include_string'd into Main, so definitions last; the value of the last expression (when
# not `nothing` and the cell does not end with `;`) is the result. SIGINT becomes an InterruptException
# in the cell (Base.exit_on_sigint(false)). readline() reads the user's stdin.
module BackendLoader

import REPL
import REPL.REPLCompletions

const cells = open(ENV["BACKEND_SESSION_CELLS"], "r")
const status = open(ENV["BACKEND_SESSION_STATUS"], "w")

function json(value)::String
    if value isa AbstractString
        escaped = replace(String(value), "\\" => "\\\\", "\"" => "\\\"", "\n" => "\\n", "\r" => "\\r", "\t" => "\\t")
        escaped = replace(escaped, r"[\x00-\x1f]" => c -> "\\u" * string(UInt32(c[1]), base=16, pad=4))
        return "\"" * escaped * "\""
    elseif value isa Number
        return string(value)
    elseif value isa AbstractVector
        return "[" * join(map(json, value), ",") * "]"
    elseif value isa AbstractDict || value isa NamedTuple
        return "{" * join(["$(json(string(k))):$(json(v))" for (k, v) in pairs(value)], ",") * "}"
    end
    return json(string(value))
end

function report(answer)
    flush(stdout)
    flush(stderr)
    println(status, json(answer))
    flush(status)
end

function run(id::Int, code::String)
    try
        value = Base.include_string(Main, code, "cell")
        if value === nothing || endswith(rstrip(code), ";")
            report((id = id, status = "ok"))
        else
            shown = sprint(show, MIME("text/plain"), value; context = :limit => true)
            report((id = id, status = "ok", result = shown))
        end
    catch err
        if err isa InterruptException
            report((id = id, status = "error", ename = "KeyboardInterrupt", evalue = "interrupted", exit_code = 130))
        else
            message = sprint(showerror, err)
            trace = sprint(showerror, err, catch_backtrace())
            report((id = id, status = "error", ename = string(nameof(typeof(err))), evalue = message,
                    exit_code = 1, traceback = split(trace, "\n")))
        end
    end
end

function complete(id::Int, text::String)
    found, range, _ = REPLCompletions.completions(text, lastindex(text), Main)
    token = isempty(range) ? "" : text[range]
    matches = unique([REPLCompletions.completion_text(c) for c in found])
    report((id = id, status = "ok", matches = matches, token = token))
end

function serve()
    Base.exit_on_sigint(false)
    report((status = "ready",))
    while !eof(cells)
        line = readline(cells)
        parts = match(r"^(\d+) (\w+) (.*)$", line)
        parts === nothing && continue
        id = parse(Int, parts[1])
        text = read(parts[3], String)
        try
            parts[2] == "run" ? run(id, text) : complete(id, text)
        catch err
            err isa InterruptException || rethrow()
        end
    end
end

end # module

BackendLoader.serve()
