"""Create the three role groups with their permissions."""

from django.db import migrations

# app_label -> model -> actions; anything not listed is not granted.
ROLE_PERMISSIONS = {
    "Analyst": {
        "countries": {"country": ["view"]},
        "indicators": {
            "riskfactor": ["view"], "indicator": ["view"], "observation": ["view", "add", "change"],
            "methodologyversion": ["view"], "scoringrun": ["view"], "riskscore": ["view"],
            "scoringsettings": ["view"],
        },
    },
    "Focal point": {
        "countries": {"country": ["view"]},
        "indicators": {
            "riskfactor": ["view"], "indicator": ["view"], "observation": ["view"],
            "methodologyversion": ["view"], "scoringrun": ["view"], "riskscore": ["view"],
        },
    },
    "Administrator": {
        "auth": {"user": ["view", "add", "change", "delete"], "group": ["view"]},
        "countries": {"country": ["view", "change"]},
        "indicators": {
            "riskfactor": ["view", "change"], "indicator": ["view", "add", "change"],
            "observation": ["view", "add", "change", "delete"], "methodologyversion": ["view"],
            "scoringrun": ["view"], "riskscore": ["view"],
            "scoringsettings": ["view", "add", "change"],
        },
    },
}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, grants in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, models in grants.items():
            for model, actions in models.items():
                for action in actions:
                    group.permissions.add(
                        Permission.objects.get(
                            content_type__app_label=app_label, codename=f"{action}_{model}"
                        )
                    )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLE_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("indicators", "0001_initial"),
        ("countries", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
