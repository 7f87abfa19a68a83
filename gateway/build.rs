//! Embeds the UI's shell (`web/shell`) in the gateway: see `ui_assets::build`.

fn main() {
    ui_assets::build::area("shell", "web/shell");
}
