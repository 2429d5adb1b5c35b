package com.example.greeting;

/** A library of the app, packed as BOOT-INF/lib/greeting.jar. */
public final class Greeting {
    private Greeting() {}

    /** The greeting for a language. */
    public static String hello(String from) {
        return "Hello from " + from;
    }
}
