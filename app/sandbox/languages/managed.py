"""Languages compiled to bytecode and run on a virtual machine: Java (OpenJDK) and C# (Mono)."""
from __future__ import annotations

import glob

from . import Language

# the JVM's own threads count as processes, and its heap and code cache need room
JAVA_FLAGS = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss8m", "-XX:ReservedCodeCacheSize=32m")
# a program's run starts ~15% sooner (CPU) with G1: JDK 17 maps the CDS archive's prebuilt heap
# objects with G1 only; its threads are capped whatever the host's core count (the run's pids cap),
# and no hsperfdata file is written to /tmp (-UsePerfData). Measured in docs/grading.md
JAVA_RUN_FLAGS = (
    "-XX:+UseG1GC", "-XX:ParallelGCThreads=2", "-XX:ConcGCThreads=1", "-XX:TieredStopAtLevel=1", "-Xss8m",
    "-XX:ReservedCodeCacheSize=32m", "-XX:-UsePerfData",
)
JAVA = Language(
    name="java",
    source_file="Main.java",
    compile=(
        "/usr/bin/javac", "-J-Xmx{heap_mb}m", *(f"-J{flag}" for flag in JAVA_FLAGS),
        "-encoding", "UTF-8", "-d", "{build}", "{sources}",
    ),
    run=("/usr/bin/java", "-Xmx{heap_mb}m", *JAVA_RUN_FLAGS, "-cp", "{build}", "Main"),
    version_command=("/usr/bin/javac", "-version"),
    address_space_limit=False,
    memory_error_markers=("java.lang.OutOfMemoryError",),
    extra_binds=tuple(glob.glob("/etc/java-*")),
    limit_overrides={"memory_bytes": 512 * 1024 * 1024, "processes": 128},
    compile_limit_overrides={"memory_bytes": 1024 * 1024 * 1024, "processes": 128},
    source_suffixes=(".java",),
    smoke_program='public class Main { public static void main(String[] a) { System.out.println("OK"); } }\n',
    display_name="Java {major}",
    template='public class Main {\n    public static void main(String[] args) {\n        System.out.println("Hello, world!");\n    }\n}\n',
)


# mcs is itself a Mono program: it and the runtime both read /etc/mono; every source file is
# compiled into one assembly, so classes in other files are found
CSHARP = Language(
    name="csharp",
    source_file="main.cs",
    compile=("/usr/bin/mono", "/usr/lib/mono/4.5/mcs.exe", "-optimize+", "-out:{build}/main.exe", "{sources}"),
    run=("/usr/bin/mono", "--gc-params=max-heap-size={heap_mb}m", "{build}/main.exe"),
    version_command=("/usr/bin/mono", "--version"),
    extra_binds=("/etc/mono",),
    memory_error_markers=("OutOfMemoryException", "Out of memory"),
    limit_overrides={"processes": 128},
    compile_limit_overrides={"memory_bytes": 1024 * 1024 * 1024, "processes": 128, "timeout_seconds": 30.0, "cpu_seconds": 30},
    source_suffixes=(".cs",),
    smoke_program='class Program { static void Main() { System.Console.WriteLine("OK"); } }\n',
    display_name="C# (Mono {major}.{minor})",
    template='using System;\n\nclass Program {\n    static void Main() {\n        Console.WriteLine("Hello, world!");\n    }\n}\n',
)
