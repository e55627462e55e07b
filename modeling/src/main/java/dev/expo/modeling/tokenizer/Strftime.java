package dev.expo.modeling.tokenizer;

import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Locale;

/** C's strftime in the C locale, for the directives chat templates use; other directives are left as written. */
final class Strftime {

    private Strftime() {
    }

    static String format(String format, LocalDateTime time) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                out.append(c);
                continue;
            }
            char directive = format.charAt(++i);
            String pattern = switch (directive) {
                case 'a' -> "EEE";
                case 'A' -> "EEEE";
                case 'b', 'h' -> "MMM";
                case 'B' -> "MMMM";
                case 'd' -> "dd";
                case 'm' -> "MM";
                case 'y' -> "yy";
                case 'Y' -> "yyyy";
                case 'H' -> "HH";
                case 'I' -> "hh";
                case 'M' -> "mm";
                case 'S' -> "ss";
                case 'p' -> "a";
                case 'j' -> "DDD";
                default -> null;
            };
            if (pattern != null) {
                out.append(DateTimeFormatter.ofPattern(pattern, Locale.US).format(time));
            } else if (directive == 'e') {
                out.append(String.format(Locale.ROOT, "%2d", time.getDayOfMonth()));
            } else if (directive == '%') {
                out.append('%');
            } else {
                out.append('%').append(directive);
            }
        }
        return out.toString();
    }
}
