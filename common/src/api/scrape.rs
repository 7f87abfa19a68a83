//! Bodies of the `/scrape/*`, `/companies/*` and `/admin/*` endpoints.
