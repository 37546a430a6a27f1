<?php
// Loader of the PHP session kernel (protocol: backend_kernel_provisioner/kernels/session.py).
// Each cell is eval()'d at global scope, so variables, functions and classes last between cells.
// SIGINT (pcntl) throws BackendInterrupt into the running cell. Names starting with __bk are the
// loader's own.

final class BackendInterrupt extends Exception
{
}

function __bk_report(array $answer): void
{
    global $__bk_status;
    flush();
    fflush(STDERR);
    fwrite($__bk_status, json_encode($answer, JSON_INVALID_UTF8_SUBSTITUTE | JSON_UNESCAPED_SLASHES) . "\n");
    fflush($__bk_status);
}

// display_html(), display_png(), ...: rich output on the status channel.
require __DIR__ . '/php_display.php';

/** A function or class the cell declares that already exists (PHP cannot redeclare them; the
 *  attempt would be a fatal error ending the session). */
function __bk_redeclared(string $code): ?string
{
    try {
        $tokens = token_get_all("<?php " . $code, TOKEN_PARSE);
    } catch (ParseError $e) {
        return null; // eval() reports it
    }
    $depth = 0;
    $count = count($tokens);
    for ($i = 0; $i < $count; $i++) {
        $token = $tokens[$i];
        if ($token === '{' || (is_array($token) && in_array($token[0], [T_CURLY_OPEN, T_DOLLAR_OPEN_CURLY_BRACES], true))) {
            $depth++;
        } elseif ($token === '}') {
            $depth--;
        } elseif ($depth === 0 && is_array($token) && in_array($token[0], [T_FUNCTION, T_CLASS, T_INTERFACE, T_TRAIT], true)) {
            for ($j = $i + 1; $j < $count && is_array($tokens[$j]) && $tokens[$j][0] === T_WHITESPACE; $j++);
            if ($j < $count && $tokens[$j] === '&') {
                for ($j++; $j < $count && is_array($tokens[$j]) && $tokens[$j][0] === T_WHITESPACE; $j++);
            }
            if ($j >= $count || !is_array($tokens[$j]) || $tokens[$j][0] !== T_STRING) {
                continue; // a closure or an anonymous class
            }
            $name = $tokens[$j][1];
            if ($token[0] === T_FUNCTION && function_exists($name)) {
                return "function $name()";
            }
            if ($token[0] !== T_FUNCTION && (class_exists($name, false) || interface_exists($name, false) || trait_exists($name, false))) {
                return "class $name";
            }
        }
    }
    return null;
}

function __bk_error_answer(int $id, Throwable $e): array
{
    if ($e instanceof BackendInterrupt) {
        return ['id' => $id, 'status' => 'error', 'ename' => 'KeyboardInterrupt', 'evalue' => 'interrupted', 'exit_code' => 130];
    }
    $where = str_contains($e->getFile(), "eval()'d code") ? "cell line " . $e->getLine() : $e->getFile() . ":" . $e->getLine();
    return ['id' => $id, 'status' => 'error', 'ename' => get_class($e), 'evalue' => $e->getMessage(),
            'exit_code' => 255, 'traceback' => [get_class($e) . ": " . $e->getMessage() . " ($where)"]];
}

function __bk_complete(int $id, string $text): void
{
    preg_match('/\$?[A-Za-z_\\\\][\w\\\\]*$|\$$/', $text, $found);
    $token = $found[0] ?? '';
    $names = [];
    if (str_starts_with($token, '$')) {
        foreach (array_keys($GLOBALS) as $name) {
            if (!str_starts_with((string)$name, '__bk')) {
                $names[] = '$' . $name;
            }
        }
    } else {
        $functions = get_defined_functions();
        $names = array_merge($functions['user'], $functions['internal'], get_declared_classes(),
                             array_keys(get_defined_constants()));
        $names = array_filter($names, fn ($n) => !str_starts_with(strtolower($n), '__bk') && $n !== 'BackendInterrupt');
    }
    $matches = array_values(array_unique(array_filter($names, fn ($n) => $token !== '' && str_starts_with($n, $token))));
    sort($matches);
    __bk_report(['id' => $id, 'status' => 'ok', 'matches' => array_slice($matches, 0, 500), 'token' => $token]);
}

require __DIR__ . '/php_inspect.php'; // __bk_inspect(): Shift-Tab's answers
require __DIR__ . '/php_is_complete.php'; // __bk_is_complete(): does the text end early?

set_error_handler(function (int $level, string $message, string $file, int $line): bool {
    if (!(error_reporting() & $level)) {
        return false;
    }
    $names = [E_WARNING => 'Warning', E_NOTICE => 'Notice', E_DEPRECATED => 'Deprecated',
              E_USER_WARNING => 'Warning', E_USER_NOTICE => 'Notice', E_USER_DEPRECATED => 'Deprecated',
              E_USER_ERROR => 'Error', E_STRICT => 'Strict Standards'];
    $where = str_contains($file, "eval()'d code") ? "on line $line" : "in $file on line $line";
    fwrite(STDERR, ($names[$level] ?? 'Error') . ": $message $where\n");
    return true;
});

$__bk_running = false;
pcntl_async_signals(true);
pcntl_signal(SIGINT, function () {
    if ($GLOBALS['__bk_running']) {
        throw new BackendInterrupt('interrupted');
    }
});

$__bk_cells = fopen(getenv('BACKEND_SESSION_CELLS'), 'r');
$__bk_status = fopen(getenv('BACKEND_SESSION_STATUS'), 'w');
__bk_report(['status' => 'ready']);

while (($__bk_line = fgets($__bk_cells)) !== false) {
    if (!preg_match('/^(\d+) (\w+) (.*)$/', rtrim($__bk_line, "\n"), $__bk_request)) {
        continue;
    }
    $__bk_id = (int)$__bk_request[1];
    $__bk_code = (string)file_get_contents($__bk_request[3]);
    if ($__bk_request[2] === 'complete') {
        __bk_complete($__bk_id, $__bk_code);
        continue;
    }
    if ($__bk_request[2] === 'is_complete') {
        __bk_report(['id' => $__bk_id, 'status' => 'ok', 'complete' => __bk_is_complete($__bk_code)]);
        continue;
    }
    if ($__bk_request[2] === 'inspect') { // the file holds the name and the detail level, one a line
        [$__bk_name, $__bk_detail] = array_pad(explode("\n", $__bk_code), 2, '0');
        try {
            [$__bk_found, $__bk_text] = __bk_inspect(trim($__bk_name), (int)$__bk_detail);
        } catch (Throwable $__bk_error) {
            [$__bk_found, $__bk_text] = [false, ''];
        }
        __bk_report(['id' => $__bk_id, 'status' => 'ok', 'found' => $__bk_found, 'text' => $__bk_text]);
        unset($__bk_name, $__bk_detail, $__bk_found, $__bk_text, $__bk_error);
        continue;
    }
    $__bk_twice = __bk_redeclared($__bk_code);
    if ($__bk_twice !== null) {
        __bk_report(['id' => $__bk_id, 'status' => 'error', 'ename' => 'Error', 'exit_code' => 255,
                     'evalue' => "Cannot redeclare $__bk_twice: it is already defined in this session (restart the kernel to redefine it)"]);
        continue;
    }
    try {
        $__bk_running = true;
        $__bk_value = eval($__bk_code);
        $__bk_running = false;
        $__bk_answer = ['id' => $__bk_id, 'status' => 'ok'];
        if ($__bk_value !== null) {
            $__bk_answer['result'] = is_scalar($__bk_value) ? var_export($__bk_value, true) : print_r($__bk_value, true);
        }
        __bk_report($__bk_answer);
    } catch (Throwable $__bk_error) {
        $__bk_running = false;
        __bk_report(__bk_error_answer($__bk_id, $__bk_error));
    }
    unset($__bk_value, $__bk_error, $__bk_answer);
}
