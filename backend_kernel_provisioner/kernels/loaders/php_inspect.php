<?php
// Inspect (Shift-Tab) for the PHP session kernel (required by php_loader.php): what a name of the
// session is, from PHP's Reflection: a function's or method's signature (parameter types, names,
// defaults, return type) and doc comment, a class's declaration and methods, a constant's or a
// variable's value. Nothing the user wrote is evaluated.

function __bk_inspect_type(?ReflectionType $type): string
{
    return $type === null ? '' : (string)$type;
}

function __bk_inspect_signature(ReflectionFunctionAbstract $function, string $shown): string
{
    $params = [];
    foreach ($function->getParameters() as $param) {
        $text = trim(__bk_inspect_type($param->getType()) . ' ' . ($param->isPassedByReference() ? '&' : '')
                     . ($param->isVariadic() ? '...' : '') . '$' . $param->getName());
        if ($param->isDefaultValueAvailable()) {
            try {
                $text .= ' = ' . ($param->isDefaultValueConstant() ? $param->getDefaultValueConstantName()
                                                                    : var_export($param->getDefaultValue(), true));
            } catch (Throwable $e) {
            }
        } elseif ($param->isOptional() && !$param->isVariadic()) {
            $text .= ' = ?';
        }
        $params[] = $text;
    }
    $return = __bk_inspect_type($function->getReturnType());
    return $shown . '(' . implode(', ', $params) . ')' . ($return !== '' ? ": $return" : '');
}

function __bk_inspect_where(ReflectionFunctionAbstract|ReflectionClass $item): string
{
    if ($item->isInternal()) {
        $extension = $item->getExtensionName();
        return 'built in' . ($extension ? " (extension $extension)" : '');
    }
    $file = (string)$item->getFileName();
    return (str_contains($file, "eval()'d code") ? 'a cell' : $file) . ', line ' . $item->getStartLine();
}

function __bk_inspect_function(ReflectionFunctionAbstract $function, string $shown): string
{
    $lines = ['Signature: ' . __bk_inspect_signature($function, $shown), 'Defined:   ' . __bk_inspect_where($function)];
    $doc = $function->getDocComment();
    if ($doc) {
        $lines[] = "Doc:\n" . $doc;
    }
    return implode("\n", $lines);
}

function __bk_inspect_class(ReflectionClass $class, int $detail): string
{
    $kind = $class->isInterface() ? 'interface' : ($class->isTrait() ? 'trait' : ($class->isEnum() ? 'enum' : 'class'));
    $head = $kind . ' ' . $class->getName();
    if ($class->getParentClass()) {
        $head .= ' extends ' . $class->getParentClass()->getName();
    }
    if ($class->getInterfaceNames()) {
        $head .= ' implements ' . implode(', ', $class->getInterfaceNames());
    }
    $lines = ["Class:     $head", 'Defined:   ' . __bk_inspect_where($class)];
    $constructor = $class->getConstructor();
    if ($constructor) {
        $lines[] = 'Signature: ' . __bk_inspect_signature($constructor, 'new ' . $class->getShortName());
    }
    if ($class->getDocComment()) {
        $lines[] = "Doc:\n" . $class->getDocComment();
    }
    $methods = $class->getMethods(ReflectionMethod::IS_PUBLIC);
    $limit = $detail > 0 ? count($methods) : 30;
    foreach (array_slice($methods, 0, $limit) as $method) {
        $lines[] = '  ' . ($method->isStatic() ? 'static ' : '') . __bk_inspect_signature($method, $method->getName());
    }
    if (count($methods) > $limit) {
        $lines[] = '  ...';
    }
    return implode("\n", $lines);
}

function __bk_inspect_value(mixed $value, string $what): string
{
    $shown = is_scalar($value) || $value === null ? var_export($value, true) : print_r($value, true);
    if (strlen($shown) > 2000) {
        $shown = substr($shown, 0, 2000) . '...';
    }
    $type = is_object($value) ? get_class($value) : get_debug_type($value);
    return "$what\nType:      $type\nValue:     " . rtrim($shown);
}

/** [found, text] for one name: $variable, Class::method, Class::CONSTANT, function, class or constant. */
function __bk_inspect(string $name, int $detail): array
{
    $name = ltrim($name, '\\');
    if (str_starts_with($name, '$')) {
        $variable = substr($name, 1);
        if (str_starts_with($variable, '__bk') || !array_key_exists($variable, $GLOBALS)) {
            return [false, ''];
        }
        return [true, __bk_inspect_value($GLOBALS[$variable], "Variable:  $name")];
    }
    if (str_contains($name, '::')) {
        [$class, $member] = explode('::', $name, 2);
        if (!class_exists($class) && !interface_exists($class) && !trait_exists($class)) {
            return [false, ''];
        }
        if (method_exists($class, $member)) {
            return [true, __bk_inspect_function(new ReflectionMethod($class, $member), "$class::$member")];
        }
        if (defined("$class::$member")) {
            return [true, __bk_inspect_value(constant("$class::$member"), "Constant:  $name")];
        }
        return [false, ''];
    }
    if (str_starts_with(strtolower($name), '__bk') || $name === 'BackendInterrupt') {
        return [false, ''];
    }
    if (function_exists($name)) {
        return [true, __bk_inspect_function(new ReflectionFunction($name), $name)];
    }
    if (class_exists($name) || interface_exists($name) || trait_exists($name)) {
        return [true, __bk_inspect_class(new ReflectionClass($name), $detail)];
    }
    if (defined($name)) {
        return [true, __bk_inspect_value(constant($name), "Constant:  $name")];
    }
    return [false, ''];
}
