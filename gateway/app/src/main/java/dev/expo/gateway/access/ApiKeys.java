package dev.expo.gateway.access;

import dev.expo.common.ExpoException;
import dev.expo.gateway.StateFile;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The gateway's API keys, in one JSON file ({@code api-keys.json}, owner-only) holding each key's SHA-256, never the
 * key. A key reads {@code expo-k-<12 hex>-<43 base64url>}: the id names the record, the 256 random bits behind it are
 * the secret. A plain hash is enough for keys this random (nobody can guess one to test against it), so checking a
 * key costs one SHA-256, not a password hash's deliberate slowness.
 */
public final class ApiKeys {

    static final String KEY_PREFIX = "expo-";
    private static final Pattern KEY = Pattern.compile("expo-(k-[0-9a-f]{12})-[A-Za-z0-9_-]{43}");
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9._-]{1,64}");

    private final Path file;
    private final Clock clock;
    private final SecureRandom random = new SecureRandom();
    private final Map<String, ApiKey> byId = new LinkedHashMap<>();

    /** A new key and the key itself, which exists only here. */
    public record Created(ApiKey key, String secret) {
    }

    public ApiKeys(Path file, Clock clock) {
        this.file = file;
        this.clock = clock;
        if (Files.exists(file)) {
            for (ApiKey key : StateFile.read(file, ApiKey[].class, "API keys")) {
                byId.put(key.id(), key);
            }
        }
    }

    public synchronized boolean isEmpty() {
        return byId.isEmpty();
    }

    public synchronized Created create(String name, Role role, QuotaLimits quota) {
        if (name == null || !NAME.matcher(name).matches()) {
            throw ExpoException.invalidArgument("name", name, "must be 1 to 64 letters, digits, '.', '_' or '-'");
        }
        if (role == null) {
            throw ExpoException.invalidArgument("role", null, "must be admin or client");
        }
        if (find(name).filter(k -> !k.revoked()).isPresent()) {
            throw new ExpoException(ExpoException.Kind.ALREADY_EXISTS, "a live key is already named " + name + "; revoke it first or pick "
                    + "another name");
        }
        String id;
        do {
            byte[] idBytes = new byte[6];
            random.nextBytes(idBytes);
            id = "k-" + HexFormat.of().formatHex(idBytes);
        } while (byId.containsKey(id));
        byte[] secretBytes = new byte[32];
        random.nextBytes(secretBytes);
        String secret = KEY_PREFIX + id + "-" + Base64.getUrlEncoder().withoutPadding().encodeToString(secretBytes);
        ApiKey key = new ApiKey(id, name, role, sha256(secret), quota, clock.instant(), null);
        byId.put(id, key);
        save();
        return new Created(key, secret);
    }

    /** The live key this secret is, if any. */
    public Optional<ApiKey> authenticate(String secret) {
        if (secret == null) {
            return Optional.empty();
        }
        var matcher = KEY.matcher(secret);
        if (!matcher.matches()) {
            return Optional.empty();
        }
        ApiKey key;
        synchronized (this) {
            key = byId.get(matcher.group(1));
        }
        if (key == null || key.revoked()) {
            return Optional.empty();
        }
        boolean same = MessageDigest.isEqual(HexFormat.of().parseHex(key.sha256()),
                HexFormat.of().parseHex(sha256(secret)));
        return same ? Optional.of(key) : Optional.empty();
    }

    /** The key with this id (live or revoked). */
    public synchronized ApiKey byId(String id) {
        ApiKey key = byId.get(id);
        if (key == null) {
            throw ExpoException.notFound("no key has the id " + id);
        }
        return key;
    }

    public synchronized List<ApiKey> list(boolean includeRevoked) {
        List<ApiKey> keys = new ArrayList<>();
        for (ApiKey key : byId.values()) {
            if (includeRevoked || !key.revoked()) {
                keys.add(key);
            }
        }
        return keys;
    }

    /** Revokes the key with this id or (live) name. */
    public synchronized ApiKey revoke(String idOrName) {
        ApiKey key = byId.get(idOrName);
        if (key == null) {
            key = find(idOrName).filter(k -> !k.revoked()).orElseThrow(() -> ExpoException.notFound(
                    "no key has the id or name \"" + idOrName + "\" (bin/expo keys list shows them)"));
        }
        if (!key.revoked()) {
            key = key.revokedAt(clock.instant());
            byId.put(key.id(), key);
            save();
        }
        return key;
    }

    private Optional<ApiKey> find(String name) {
        return byId.values().stream().filter(k -> k.name().equals(name) && !k.revoked()).findFirst()
                .or(() -> byId.values().stream().filter(k -> k.name().equals(name)).findFirst());
    }

    private void save() {
        StateFile.write(file, byId.values(), "API keys");
    }

    static String sha256(String secret) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(
                    secret.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
