package com.example.boot;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.jar.Manifest;

/**
 * A tiny stand-in for Spring Boot's JarLauncher, for an exploded JAR of Spring Boot's layout
 * (run with {@code java -cp . com.example.boot.BootLauncher}): loads BOOT-INF/classes and
 * BOOT-INF/lib/*.jar and calls the manifest's Start-Class.
 */
public final class BootLauncher {
    private BootLauncher() {}

    public static void main(String[] args) throws Exception {
        File root = new File(BootLauncher.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        Manifest mf;
        try (InputStream in = new FileInputStream(new File(root, "META-INF/MANIFEST.MF"))) {
            mf = new Manifest(in);
        }
        String start = mf.getMainAttributes().getValue("Start-Class");
        if (start == null) {
            throw new IOException("META-INF/MANIFEST.MF has no Start-Class");
        }
        List<URL> urls = new ArrayList<>();
        urls.add(new File(root, "BOOT-INF/classes/").toURI().toURL());
        File[] libs = new File(root, "BOOT-INF/lib").listFiles((d, n) -> n.endsWith(".jar"));
        if (libs != null) {
            Arrays.sort(libs);
            for (File lib : libs) {
                urls.add(lib.toURI().toURL());
            }
        }
        ClassLoader loader = new URLClassLoader(urls.toArray(new URL[0]), BootLauncher.class.getClassLoader());
        Thread.currentThread().setContextClassLoader(loader);
        Method main = Class.forName(start, true, loader).getMethod("main", String[].class);
        main.invoke(null, (Object) args);
    }
}
