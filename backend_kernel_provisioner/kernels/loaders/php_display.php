<?php
// Rich output of the PHP session kernel, required by php_loader.php. Each function writes one
// {"display": ...} line on the status channel (protocol: backend_kernel_provisioner/kernels/interpreter.py)
// after flushing the output, then waits for the kernel's line on the FIFO display-ack, so the display sits
// between what the cell printed before and after.
//
//   display_html($s)  display_markdown($s)  display_latex($s)  display_svg($s)  display_text($s)
//   display_json($arrayOrJsonText)
//   display_png($bytesOrPath)  display_jpeg($bytesOrPath)
//   display_data(['text/html' => ..., 'text/plain' => ...])
// Each takes an optional last argument $metadata (e.g. ['width' => 200] for an image).

function display_data(array $data, array $metadata = []): void
{
    __bk_report(['display' => ['data' => (object)$data, 'metadata' => (object)$metadata]]);
    $ack = fopen(getenv('BACKEND_SESSION_DIR') . '/display-ack', 'r'); // the kernel holds it open
    if ($ack !== false) {
        fgets($ack);
        fclose($ack);
    }
}

function __bk_display_image(string $value, string $signature, string $name): string
{
    if (str_starts_with($value, $signature)) {
        return base64_encode($value);
    }
    $bytes = @file_get_contents($value);
    if ($bytes === false) {
        throw new InvalidArgumentException("$name() takes the image's bytes or the path of its file: no such file: $value");
    }
    return base64_encode($bytes);
}

function display_html(string $html, array $metadata = []): void
{
    display_data(['text/html' => $html], $metadata);
}

function display_markdown(string $markdown, array $metadata = []): void
{
    display_data(['text/markdown' => $markdown], $metadata);
}

function display_latex(string $latex, array $metadata = []): void
{
    display_data(['text/latex' => $latex], $metadata);
}

function display_svg(string $svg, array $metadata = []): void
{
    display_data(['image/svg+xml' => $svg], $metadata);
}

function display_text(string $text, array $metadata = []): void
{
    display_data(['text/plain' => $text], $metadata);
}

function display_json(mixed $value, array $metadata = []): void
{
    display_data(['application/json' => $value], $metadata);
}

function display_png(string $bytesOrPath, array $metadata = []): void
{
    display_data(['image/png' => __bk_display_image($bytesOrPath, "\x89PNG", 'display_png')], $metadata);
}

function display_jpeg(string $bytesOrPath, array $metadata = []): void
{
    display_data(['image/jpeg' => __bk_display_image($bytesOrPath, "\xFF\xD8\xFF", 'display_jpeg')], $metadata);
}
