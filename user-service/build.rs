//! Embeds the web UI's auth area (`web/auth`): see `ui_assets::build`.

fn main() {
    ui_assets::build::area("auth", "web/auth");
}
