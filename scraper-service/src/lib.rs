//! scraper-service
