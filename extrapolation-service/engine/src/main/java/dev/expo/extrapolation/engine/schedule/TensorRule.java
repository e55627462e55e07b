package dev.expo.extrapolation.engine.schedule;

import dev.expo.common.ExpoException;

import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Gives every tensor whose whole name matches one alpha. Written as a glob ({@code *} any run of characters,
 * {@code ?} one character) or a Java regular expression.
 */
public record TensorRule(String pattern, boolean regex, double alpha, Pattern compiled) {

    public static TensorRule glob(String glob, double alpha) {
        return new TensorRule(glob, false, alpha, compileGlob(glob));
    }

    public static TensorRule regex(String regex, double alpha) {
        try {
            return new TensorRule(regex, true, alpha, Pattern.compile(regex));
        } catch (PatternSyntaxException e) {
            throw ExpoException.invalidArgument("rules.regex", regex, "not a valid regular expression: "
                    + e.getDescription());
        }
    }

    public TensorRule {
        if (pattern == null || pattern.isEmpty()) {
            throw ExpoException.invalidArgument("rules", "", "a rule needs a non-empty glob or regex");
        }
        LayerSchedule.checkFinite("rules.alpha", alpha);
    }

    public boolean matches(String tensorName) {
        return compiled.matcher(tensorName).matches();
    }

    public String describe() {
        return (regex ? "regex " : "glob ") + pattern;
    }

    private static Pattern compileGlob(String glob) {
        StringBuilder regex = new StringBuilder();
        for (char c : glob.toCharArray()) {
            switch (c) {
                case '*' -> regex.append(".*");
                case '?' -> regex.append('.');
                default -> regex.append(Pattern.quote(String.valueOf(c)));
            }
        }
        return Pattern.compile(regex.toString());
    }
}
