"""Give the Administrator role the admin permissions of the models added since the roles
were made: methodology versions (drafts are edited there, through the methodology
service), their audit log and jobs, situation profiles and their assignments, uploads,
data sets and recompute requests (read-only records)."""

from django.db import migrations

GRANTS = {
    "methodologyversion": ["view", "change"],
    "methodologyevent": ["view"],
    "methodologyjob": ["view"],
    "situationprofile": ["view", "add", "change", "delete"],
    "profileassignment": ["view", "add", "change", "delete"],
    "situationscore": ["view"],
    "observationupload": ["view"],
    "dataset": ["view"],
    "recomputerequest": ["view"],
}


def _permissions(apps):
    Permission = apps.get_model("auth", "Permission")
    return Permission.objects.filter(
        content_type__app_label="indicators",
        codename__in=[f"{action}_{model}" for model, actions in GRANTS.items() for action in actions],
    )


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("indicators")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    group, _ = apps.get_model("auth", "Group").objects.get_or_create(name="Administrator")
    group.permissions.add(*_permissions(apps))


def revoke(apps, schema_editor):
    for group in apps.get_model("auth", "Group").objects.filter(name="Administrator"):
        group.permissions.remove(*_permissions(apps))


class Migration(migrations.Migration):
    dependencies = [
        ("indicators", "0012_risk_score_fewer_indexes"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
