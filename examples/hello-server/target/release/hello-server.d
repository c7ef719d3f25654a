/work/main/examples/hello-server/target/release/hello-server: /work/main/examples/hello-server/src/main.rs
