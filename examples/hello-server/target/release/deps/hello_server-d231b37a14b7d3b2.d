/work/main/examples/hello-server/target/release/deps/hello_server-d231b37a14b7d3b2.d: src/main.rs

/work/main/examples/hello-server/target/release/deps/hello_server-d231b37a14b7d3b2: src/main.rs

src/main.rs:
