<?php
// is_complete for the PHP session kernel (required by php_loader.php, which answers an `is_complete`
// request with the verdict): PHP's own parser (token_get_all with TOKEN_PARSE) reads the cell without
// running it. "unexpected end of file", an unclosed bracket or comment means the cell ends early; so
// does a string or heredoc left open (PHP's strings span lines). A cell may start with its own `<?php`.

function __bk_is_complete(string $code): string
{
    $open = preg_match('/^\s*<\?php\b/', $code) ? '' : '<?php ';
    $parses = function (string $source) use ($open): ?string {
        try {
            token_get_all($open . $source, TOKEN_PARSE);
            return null;
        } catch (ParseError $e) {
            return $e->getMessage();
        }
    };
    $error = $parses($code);
    if ($error === null) {
        return 'complete';
    }
    if (preg_match('/unexpected end of file|Unclosed \'|Unterminated comment/', $error)) {
        return 'incomplete';
    }
    foreach (["'", '"'] as $quote) {
        if ($parses($code . $quote . ';') === null) {
            return 'incomplete';
        }
    }
    if (preg_match('/<<<\s*[\'"]?(\w+)[\'"]?\s*$/m', $code, $found, PREG_OFFSET_CAPTURE)) {
        $after = substr($code, $found[0][1] + strlen($found[0][0]));
        if (!preg_match('/^\s*' . preg_quote($found[1][0], '/') . '\b/m', $after)) {
            return 'incomplete';
        }
    }
    return 'invalid';
}
