"""Small widgets and renderables the screens share; they render report objects only."""
