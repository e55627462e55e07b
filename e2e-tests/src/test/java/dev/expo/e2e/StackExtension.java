package dev.expo.e2e;

import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/** Starts one {@link Stack} for the whole test run (the first test class that asks) and stops it at the end. */
public class StackExtension implements ParameterResolver {

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        return parameter.getParameter().getType() == Stack.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
        return context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL)
                .getOrComputeIfAbsent(Stack.class, key -> {
                    try {
                        return new Stack();
                    } catch (Exception e) {
                        throw new IllegalStateException("could not start the stack: " + e.getMessage(), e);
                    }
                }, Stack.class);
    }
}
