"""Settings are validated once; unsafe shortcuts refuse to start outside development."""

from __future__ import annotations

from pathlib import Path

import pytest

from memoria.settings import Settings, SettingsError


def test_defaults_are_embedded_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"MEMORIA_DATA_DIR": str(tmp_path)})
    assert settings.is_sqlite
    assert settings.resolved_database_url.endswith(f"{tmp_path}/memoria.db")
    assert settings.embedder == "minilm"


def test_environment_values_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql+asyncpg://u:p@db/memoria",
            "MEMORIA_PORT": "9000",
            "MEMORIA_MAX_CONTENT_CHARS": "100",
            "MEMORIA_SEARCH_INDEX_ENTRIES": "250000",
            "MEMORIA_VECTOR_INDEX_ENTRIES": "2000000",
            "MEMORIA_VECTOR_SEARCH": "Database",
        }
    )
    assert not settings.is_sqlite
    assert settings.port == 9000
    assert settings.limits.max_content_chars == 100
    assert settings.search_index_entries == 250_000
    assert settings.vector_index_entries == 2_000_000
    assert settings.vector_search == "database"


@pytest.mark.parametrize(
    "env",
    [
        {"MEMORIA_PORT": "eighty"},
        {"MEMORIA_PORT": "70000"},
        {"MEMORIA_ENV": "staging"},
        {"MEMORIA_EMBEDDER": "gpt"},
        {"DATABASE_URL": "mysql://x"},
        {"MEMORIA_JWT_TTL_SECONDS": "5"},
        {"MEMORIA_SEARCH_INDEX_ENTRIES": "-1"},
        {"MEMORIA_SEARCH_INDEX_ENTRIES": "many"},
        {"MEMORIA_VECTOR_INDEX_ENTRIES": "-5"},
        {"MEMORIA_VECTOR_SEARCH": "gpu"},
    ],
)
def test_invalid_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(env)


def test_production_refuses_unsafe_shortcuts() -> None:
    with pytest.raises(SettingsError, match="tests only"):
        Settings.from_env({"MEMORIA_ENV": "production"}, fast_password_hashing=True)
    with pytest.raises(SettingsError, match="tests only"):
        Settings.from_env({"MEMORIA_ENV": "production", "MEMORIA_EMBEDDER": "hashing"})
    with pytest.raises(SettingsError, match="12"):
        Settings.from_env({"MEMORIA_ENV": "production", "MEMORIA_ADMIN_PASSWORD": "short"})
    with pytest.raises(SettingsError, match="MEMORIA_JWT_SECRET"):
        Settings.from_env({"MEMORIA_ENV": "production", "MEMORIA_JWT_SECRET": "secret"})
    assert Settings.from_env({"MEMORIA_ENV": "production"}).environment == "production"
    assert Settings.from_env({"MEMORIA_JWT_SECRET": "secret"}).jwt_secret == "secret"  # dev: fine
