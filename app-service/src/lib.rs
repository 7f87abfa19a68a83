//! app-service
