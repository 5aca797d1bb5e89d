"""Let Administrators create and revoke users' API tokens in the admin."""

from django.db import migrations

ACTIONS = ["view", "add", "delete"]


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("authtoken")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    group, _ = apps.get_model("auth", "Group").objects.get_or_create(name="Administrator")
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="authtoken",
            codename__in=[f"{action}_tokenproxy" for action in ACTIONS],
        )
    )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name="Administrator"):
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="authtoken"))


class Migration(migrations.Migration):
    dependencies = [
        ("indicators", "0002_roles"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
