package dev.expo.gateway.access;

/** What a key may do; an admin may do everything a client may. */
public enum Role {
    CLIENT, ADMIN;

    public boolean allows(Role needed) {
        return this == ADMIN || needed == CLIENT;
    }

    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    public static Role parse(String text) {
        for (Role role : values()) {
            if (role.label().equals(text)) {
                return role;
            }
        }
        throw new IllegalArgumentException("role must be admin or client, not \"" + text + "\"");
    }
}
