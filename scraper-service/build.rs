//! Embeds the web UI's companies area (`web/companies`): see `ui_assets::build`.

fn main() {
    ui_assets::build::area("companies", "web/companies");
}
