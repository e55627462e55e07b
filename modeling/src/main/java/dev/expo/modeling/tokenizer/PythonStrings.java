package dev.expo.modeling.tokenizer;

import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;

/**
 * Python's {@code str} methods for chat templates. Templates are written for Jinja2, where a string is a
 * Python {@code str}: {@code content.split('</think>')[-1].lstrip('\n')}, {@code role.startswith('tool')}. Jinjava
 * would call Java's methods of the same names instead (or none): {@code split} takes a regular expression and drops
 * trailing empty strings, {@code strip} takes no characters. This resolver answers those calls first, with Python's
 * semantics; every other call goes on to Jinjava's resolvers. (Indexing and slicing a string by position, and
 * {@code %} formatting, are {@link PythonSyntax}'s.)
 */
final class PythonStrings extends ELResolver {

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (!(base instanceof CharSequence chars) || !(method instanceof String name)) {
            return null;
        }
        Object[] args = params == null ? new Object[0] : params;
        String s = chars.toString();
        Object result = call(s, name, args);
        if (result != NOT_HANDLED) {
            context.setPropertyResolved(true);
            return result;
        }
        return null;
    }

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        return null;   // properties and indexes: Jinjava's resolvers
    }

    private static final Object NOT_HANDLED = new Object();

    private static Object call(String s, String name, Object[] a) {
        return switch (name) {
            case "upper" -> a.length == 0 ? s.toUpperCase(Locale.ROOT) : NOT_HANDLED;
            case "lower" -> a.length == 0 ? s.toLowerCase(Locale.ROOT) : NOT_HANDLED;
            case "strip" -> strip(s, chars(a), true, true);
            case "lstrip" -> strip(s, chars(a), true, false);
            case "rstrip" -> strip(s, chars(a), false, true);
            case "startswith" -> a.length == 1 ? anyMatch(a[0], s::startsWith) : NOT_HANDLED;
            case "endswith" -> a.length == 1 ? anyMatch(a[0], s::endsWith) : NOT_HANDLED;
            case "split" -> split(s, a.length > 0 ? a[0] : null, a.length > 1 ? ((Number) a[1]).intValue() : -1);
            case "rsplit" -> rsplit(s, a.length > 0 ? a[0] : null, a.length > 1 ? ((Number) a[1]).intValue() : -1);
            case "splitlines" -> a.length == 0 ? splitlines(s) : NOT_HANDLED;
            case "replace" -> a.length >= 2 ? replace(s, str(a[0]), str(a[1]),
                    a.length > 2 ? ((Number) a[2]).intValue() : -1) : NOT_HANDLED;
            case "format" -> format(s, a);
            case "title" -> a.length == 0 ? title(s) : NOT_HANDLED;
            case "capitalize" -> a.length == 0 ? (s.isEmpty() ? s
                    : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT))
                    : NOT_HANDLED;
            case "count" -> a.length == 1 ? (long) count(s, str(a[0])) : NOT_HANDLED;
            case "find" -> a.length == 1 ? (long) codePointIndex(s, s.indexOf(str(a[0]))) : NOT_HANDLED;
            case "rfind" -> a.length == 1 ? (long) codePointIndex(s, s.lastIndexOf(str(a[0]))) : NOT_HANDLED;
            case "index" -> a.length == 1 ? found(codePointIndex(s, s.indexOf(str(a[0])))) : NOT_HANDLED;
            case "rindex" -> a.length == 1 ? found(codePointIndex(s, s.lastIndexOf(str(a[0])))) : NOT_HANDLED;
            case "isupper" -> a.length == 0 ? cased(s) && s.codePoints().noneMatch(Character::isLowerCase) : NOT_HANDLED;
            case "islower" -> a.length == 0 ? cased(s) && s.codePoints().noneMatch(Character::isUpperCase) : NOT_HANDLED;
            case "isalnum" -> a.length == 0 ? !s.isEmpty() && s.codePoints().allMatch(Character::isLetterOrDigit)
                    : NOT_HANDLED;
            case "join" -> a.length == 1 && a[0] instanceof Iterable<?> items ? join(s, items) : NOT_HANDLED;
            case "isspace" -> a.length == 0 ? !s.isEmpty() && s.codePoints().allMatch(PythonStrings::isSpace)
                    : NOT_HANDLED;
            case "isdigit" -> a.length == 0 ? !s.isEmpty() && s.codePoints().allMatch(Character::isDigit)
                    : NOT_HANDLED;
            case "isalpha" -> a.length == 0 ? !s.isEmpty() && s.codePoints().allMatch(Character::isLetter)
                    : NOT_HANDLED;
            case "removeprefix" -> a.length == 1 && s.startsWith(str(a[0])) ? s.substring(str(a[0]).length())
                    : a.length == 1 ? s : NOT_HANDLED;
            case "removesuffix" -> a.length == 1 && s.endsWith(str(a[0])) && !str(a[0]).isEmpty()
                    ? s.substring(0, s.length() - str(a[0]).length()) : a.length == 1 ? s : NOT_HANDLED;
            default -> NOT_HANDLED;
        };
    }

    /**
     * Python's str.format with positional fields ({@code {}}, {@code {0}}) and doubled braces; a field with a name,
     * an attribute or a format spec is refused rather than rendered differently.
     */
    private static String format(String s, Object[] args) {
        StringBuilder out = new StringBuilder();
        int next = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if ((c == '{' || c == '}') && i + 1 < s.length() && s.charAt(i + 1) == c) {
                out.append(c);
                i++;
            } else if (c == '{') {
                int close = s.indexOf('}', i);
                String field = close < 0 ? "" : s.substring(i + 1, close);
                int position;
                if (field.isEmpty() && close > 0) {
                    position = next++;
                } else if (!field.isEmpty() && field.chars().allMatch(Character::isDigit)) {
                    position = Integer.parseInt(field);
                } else {
                    throw new IllegalArgumentException("str.format field {" + field + "} is not supported here");
                }
                if (position >= args.length) {
                    throw new IllegalArgumentException("str.format: no argument " + position);
                }
                out.append(PythonRepr.str(args[position]));
                i = close;
            } else if (c == '}') {
                throw new IllegalArgumentException("str.format: single '}' encountered");
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    /** str.index / rindex: find's position, or Python's ValueError. */
    private static long found(int position) {
        if (position < 0) {
            throw new IllegalArgumentException("substring not found");
        }
        return position;
    }

    /** isupper / islower need at least one cased character. */
    private static boolean cased(String s) {
        return s.codePoints().anyMatch(c -> Character.isUpperCase(c) || Character.isLowerCase(c));
    }

    /** Python's str.isspace for one character (Java's isWhitespace leaves out no-break spaces). */
    private static boolean isSpace(int c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == 0x85;
    }

    private static String str(Object o) {
        if (o == null) {
            throw new IllegalArgumentException("expected a string, got None");
        }
        return o.toString();
    }

    private static String chars(Object[] a) {
        return a.length == 0 || a[0] == null ? null : a[0].toString();
    }

    private static String strip(String s, String chars, boolean left, boolean right) {
        int[] cps = s.codePoints().toArray();
        int from = 0;
        int to = cps.length;
        while (left && from < to && stripped(cps[from], chars)) {
            from++;
        }
        while (right && to > from && stripped(cps[to - 1], chars)) {
            to--;
        }
        return new String(cps, from, to - from);
    }

    private static boolean stripped(int c, String chars) {
        return chars == null ? isSpace(c) : chars.codePoints().anyMatch(x -> x == c);
    }

    private static boolean anyMatch(Object prefixes, java.util.function.Predicate<String> test) {
        if (prefixes instanceof Collection<?> many) {   // a tuple in Python: any of them
            return many.stream().anyMatch(p -> test.test(str(p)));
        }
        return test.test(str(prefixes));
    }

    /** Python's str.split: by a literal separator keeping empty parts, or (no separator) on runs of whitespace. */
    private static List<String> split(String s, Object separator, int maxSplit) {
        List<String> parts = new ArrayList<>();
        if (separator == null) {
            int[] cps = s.codePoints().toArray();
            int i = 0;
            while (true) {
                while (i < cps.length && isSpace(cps[i])) {
                    i++;
                }
                if (i == cps.length) {
                    return parts;
                }
                if (maxSplit >= 0 && parts.size() == maxSplit) {
                    int end = cps.length;
                    while (end > i && isSpace(cps[end - 1])) {
                        end--;
                    }
                    parts.add(new String(cps, i, end - i));
                    return parts;
                }
                int start = i;
                while (i < cps.length && !isSpace(cps[i])) {
                    i++;
                }
                parts.add(new String(cps, start, i - start));
            }
        }
        String sep = str(separator);
        if (sep.isEmpty()) {
            throw new IllegalArgumentException("empty separator");
        }
        int from = 0;
        for (int at = s.indexOf(sep); at >= 0 && (maxSplit < 0 || parts.size() < maxSplit); at = s.indexOf(sep, from)) {
            parts.add(s.substring(from, at));
            from = at + sep.length();
        }
        parts.add(s.substring(from));
        return parts;
    }

    /** Python's str.rsplit: split from the right, so a limit keeps the leftmost part whole. */
    private static List<String> rsplit(String s, Object separator, int maxSplit) {
        if (maxSplit < 0) {
            return split(s, separator, -1);
        }
        // Splitting the reversed string with the reversed separator splits from the right.
        List<String> reversed = split(reverse(s), separator == null ? null : reverse(str(separator)), maxSplit);
        List<String> parts = new ArrayList<>();
        for (int i = reversed.size() - 1; i >= 0; i--) {
            parts.add(reverse(reversed.get(i)));
        }
        return parts;
    }

    private static String reverse(String s) {
        return new StringBuilder(s).reverse().toString();
    }

    /** Python's str.splitlines: at \n, \r, \r\n and the other Unicode line breaks, without them. */
    private static List<String> splitlines(String s) {
        List<String> lines = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e
                    || c == 0x85 || c == 0x2028 || c == 0x2029) {
                lines.add(s.substring(start, i));
                if (c == '\r' && i + 1 < s.length() && s.charAt(i + 1) == '\n') {
                    i++;
                }
                start = i + 1;
            }
        }
        if (start < s.length()) {
            lines.add(s.substring(start));
        }
        return lines;
    }

    private static String replace(String s, String old, String replacement, int count) {
        if (count < 0) {
            return s.replace(old, replacement);
        }
        StringBuilder out = new StringBuilder();
        int from = 0;
        for (int n = 0; n < count; n++) {
            int at = s.indexOf(old, from);
            if (at < 0 || old.isEmpty()) {
                break;
            }
            out.append(s, from, at).append(replacement);
            from = at + old.length();
        }
        return out.append(s.substring(from)).toString();
    }

    private static String title(String s) {
        StringBuilder out = new StringBuilder();
        boolean previousCased = false;
        for (int c : s.codePoints().toArray()) {
            out.appendCodePoint(previousCased ? Character.toLowerCase(c) : Character.toTitleCase(c));
            previousCased = Character.isLetter(c);
        }
        return out.toString();
    }

    private static int count(String s, String sub) {
        if (sub.isEmpty()) {
            return s.codePointCount(0, s.length()) + 1;
        }
        int n = 0;
        for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) {
            n++;
        }
        return n;
    }

    private static int codePointIndex(String s, int charIndex) {
        return charIndex < 0 ? -1 : s.codePointCount(0, charIndex);
    }

    private static String join(String separator, Iterable<?> items) {
        StringBuilder out = new StringBuilder();
        boolean first = true;
        for (Object item : items) {
            if (!first) {
                out.append(separator);
            }
            out.append(str(item));
            first = false;
        }
        return out.toString();
    }

    // Read-only, and only for the calls above.
    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {
    }

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return true;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }
}
