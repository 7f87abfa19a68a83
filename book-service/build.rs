//! Embeds the web UI's catalogue area (`web/catalogue`): see `ui_assets::build`.

fn main() {
    ui_assets::build::area("catalogue", "web/catalogue");
}
