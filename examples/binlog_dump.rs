//! Prints what Sluice's binlog decoder reads from binlog files: `binlog_dump FILE...`.

fn main() {
    for path in std::env::args().skip(1) {
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        match sluice::testing::read_file(&path, &data) {
            Ok(c) => {
                println!(
                    "{path}: {} events, server {}, gtids {:?}",
                    c.events, c.server_version, c.gtids
                );
                for r in &c.rows {
                    println!(
                        "  {} {:?} {:?} before={:?} after={:?}",
                        r.table, r.kind, r.columns, r.before, r.after
                    );
                }
            }
            Err(e) => println!("{path}: ERROR {e}"),
        }
    }
}
