package dev.expo.gateway.access;

import dev.expo.api.v1.AccessProto;
import io.grpc.MethodDescriptor;
import io.grpc.protobuf.ProtoMethodDescriptorSupplier;

import java.util.Optional;
import java.util.Set;

/**
 * Which role a method needs: its {@code expo.v1.required_role} option, read from the method's own proto descriptor,
 * so the contract and the check cannot drift. Health and reflection are open (Kubernetes probes, grpcurl); any
 * other method that names no role is refused (fail closed).
 */
public final class AccessPolicy {

    private static final Set<String> OPEN_SERVICES = Set.of("grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection");

    private AccessPolicy() {
    }

    public static boolean isOpen(MethodDescriptor<?, ?> method) {
        return OPEN_SERVICES.contains(method.getServiceName());
    }

    /** The role the method needs; empty when its proto names none (then nobody may call it). */
    public static Optional<Role> requiredRole(MethodDescriptor<?, ?> method) {
        if (method.getSchemaDescriptor() instanceof ProtoMethodDescriptorSupplier supplier) {
            return requiredRole(supplier.getMethodDescriptor());
        }
        return Optional.empty();
    }

    public static Optional<Role> requiredRole(com.google.protobuf.Descriptors.MethodDescriptor method) {
        return switch (method.getOptions().getExtension(AccessProto.requiredRole)) {
            case ROLE_ADMIN -> Optional.of(Role.ADMIN);
            case ROLE_CLIENT -> Optional.of(Role.CLIENT);
            default -> Optional.empty();
        };
    }
}
