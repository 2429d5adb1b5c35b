#!/bin/sh
# Builds target/app.jar from src/ with the JDK (javac and jar, no Maven), in
# Spring Boot's layout: the app's classes under BOOT-INF/classes, its
# library as BOOT-INF/lib/greeting.jar, and a tiny launcher as Main-Class
# with the app as Start-Class. `make examples` runs it.
set -eu
cd "$(dirname "$0")"
for tool in javac jar; do
  command -v "$tool" >/dev/null 2>&1 || { echo "java-hello: no $tool: run make setup (openjdk-17-jdk-headless)" >&2; exit 1; }
done
rm -rf target
mkdir -p target/lib target/jar/BOOT-INF/classes target/jar/BOOT-INF/lib
javac --release 17 -d target/lib src/lib/com/example/greeting/Greeting.java
jar --create --file target/jar/BOOT-INF/lib/greeting.jar -C target/lib .
javac --release 17 -cp target/lib -d target/jar/BOOT-INF/classes src/app/com/example/hello/HelloApp.java
javac --release 17 -d target/jar src/boot/com/example/boot/BootLauncher.java
printf 'Start-Class: com.example.hello.HelloApp\nSpring-Boot-Classes: BOOT-INF/classes/\nSpring-Boot-Lib: BOOT-INF/lib/\n' > target/manifest.txt
jar --create --file target/app.jar --main-class com.example.boot.BootLauncher --manifest target/manifest.txt -C target/jar .
rm -rf target/lib target/jar target/manifest.txt
echo "java-hello: built target/app.jar ($(wc -c < target/app.jar) bytes)"
